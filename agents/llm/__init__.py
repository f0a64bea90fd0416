"""The LLM client layer: providers, model resolution, calls, retries and cost."""
