"""The server-drawn DAG diagram: layers, layout, status hooks, escaping, and size at scale."""

from __future__ import annotations

import re
from xml.etree import ElementTree

from dags.diagram import COLUMN_SIZE, dag_diagram_svg, diagram_layers, diagram_layout

SVG = "{http://www.w3.org/2000/svg}"


def task(task_id, *deps, description=""):
    return {"id": task_id, "description": description or f"task {task_id}", "dependencies": deps}


def test_layer_is_the_longest_dependency_path():
    tasks = [
        task("001"),
        task("002", "001"),
        task("003", "002"),
        task("004", "001", "003"),
        task("005", "none"),
    ]
    assert diagram_layers(tasks) == {"001": 0, "002": 1, "003": 2, "004": 3, "005": 0}


def test_a_cycle_does_not_hang_and_is_drawn_after_the_rest():
    layers = diagram_layers([task("a"), task("b", "c"), task("c", "b")])
    assert layers == {"a": 0, "b": 1, "c": 1}


def test_nodes_of_a_later_layer_sit_right_of_their_dependencies():
    placed, width, height = diagram_layout([task("1"), task("2", "1"), task("3", "2")])
    xs = {node.id: node.x for node in placed}
    assert xs["1"] < xs["2"] < xs["3"]
    assert width > xs["3"] and height > 0


def test_a_wide_layer_wraps_into_columns():
    tasks = [task(f"{i:03}") for i in range(COLUMN_SIZE * 3 + 1)]
    placed, width, height = diagram_layout(tasks)
    assert len({node.x for node in placed}) == 4
    assert len({node.y for node in placed}) == COLUMN_SIZE
    assert width > height / 4


def test_svg_has_one_node_per_task_and_one_edge_per_dependency():
    svg = str(
        dag_diagram_svg(
            [task("001"), task("002", "001"), task("003", "001", "002")],
            {"001": "completed", "002": "running"},
            step_href="?step={id}",
        )
    )
    root = ElementTree.fromstring(svg)  # well-formed XML
    nodes = root.findall(f".//{SVG}g[@class='node']")
    assert [n.get("data-task-id") for n in nodes] == ["001", "002", "003"]
    assert [n.get("data-status") for n in nodes] == ["completed", "running", None]
    edges = root.findall(f".//{SVG}path[@class='edge']")
    assert {(e.get("data-from"), e.get("data-to")) for e in edges} == {
        ("001", "002"),
        ("001", "003"),
        ("002", "003"),
    }
    links = root.findall(f".//{SVG}a")
    assert [link.get("href") for link in links] == ["?step=001", "?step=002", "?step=003"]
    assert nodes[0].find(f".//{SVG}title").text == "001: task 001 (completed)"
    assert nodes[0].find(f".//{SVG}text[@class='node-icon']").text == "✓"


def test_hostile_descriptions_and_ids_are_escaped():
    hostile = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'
    svg = str(dag_diagram_svg([task('x"><script>', description=hostile)], step_href="?step={id}"))
    root = ElementTree.fromstring(svg)
    assert not root.findall(".//script") and not root.findall(f".//{SVG}script")
    assert "<script>" not in svg and "<img" not in svg
    assert root.find(f".//{SVG}a").get("href") == "?step=x%22%3E%3Cscript%3E"


def test_long_descriptions_are_shortened_in_the_label_and_whole_in_the_title():
    svg = str(dag_diagram_svg([task("1", description="word " * 40)]))
    root = ElementTree.fromstring(svg)
    label = root.find(f".//{SVG}text[@class='node-label']").text
    assert label.endswith("…") and len(label) <= 30
    assert root.find(f".//{SVG}title").text.startswith("1: word word")


def test_a_thousand_node_diagram_stays_a_bounded_rectangle():
    tasks = [task("000")]
    # A fan-out of 999 tasks over 10 chains: wide and deep at once.
    for i in range(1, 1000):
        previous = f"{i - 10:03}" if i > 10 else "000"
        tasks.append(task(f"{i:03}", previous))
    svg = str(dag_diagram_svg(tasks, {"000": "completed"}, step_href="?step={id}"))
    assert svg.count('class="node"') == 1000
    _, height = map(int, re.search(r'width="(\d+)" height="(\d+)"', svg).groups())
    assert height <= COLUMN_SIZE * 60 + 24
