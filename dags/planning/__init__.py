"""DAG planning: one service behind create-dag, create-and-execute-dag and dag-experiments."""
