"""``make demo``: a short scripted tour of the identity graph on a throw-away SQLite file.

Run with ``python -m keyplane.demo``. It creates a model (humans, agents, groups, folders,
documents, with a condition), writes a small organisation, and shows check, explain, list
objects, list users, contextual tuples, an expiring grant, conditions and read-your-writes
with ``at_least_as_fresh``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.panel import Panel

from keyplane.clock import FixedClock
from keyplane.config import Settings
from keyplane.embedded import Keyplane
from keyplane.errors import KeyplaneError

MODEL = """\
model
  schema 1.1

type human

type agent
  relations
    define owner: [human]

type group
  relations
    define member: [human, agent, group#member]

type folder
  relations
    define viewer: [human, agent, group#member]
    define editor: [human, group#member]

type document
  relations
    define parent: [folder]
    define owner: [human]
    define blocked: [human, agent]
    define editor: [human, group#member] or owner or editor from parent
    define viewer: ([human, agent, human:*, group#member, agent with office_hours] or editor or viewer from parent) but not blocked

condition office_hours(hour: int) {
  hour >= 9 && hour < 18
}
"""

console = Console(width=110, soft_wrap=True)


def step(title: str) -> None:
    console.rule(f"[bold cyan]{title}")


def show(label: str, value: object) -> None:
    if isinstance(value, bool):
        value = "allowed" if value else "denied"
    console.print(f"  {label:<48} [bold]{value}[/bold]", highlight=False)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="keyplane-demo-") as tmp:
        db = Path(tmp) / "keyplane.db"
        clock = FixedClock(time.time())
        settings = Settings.from_env(database_url=f"sqlite:///{db}", poll_interval=0.0)
        console.print(Panel.fit(f"Keyplane demo — a throw-away store in [bold]{db}[/bold]"))
        with Keyplane.open(settings=settings, clock=clock) as kp:
            tour(kp, clock)


def tour(kp: Keyplane, clock: FixedClock) -> None:
    step("1. A model: humans, agents, groups, folders, documents")
    rec = kp.write_model(MODEL)
    show("model version", rec.id)

    step("2. The graph: who is in which group, which folder holds what")
    res = kp.write_tuples(
        [
            "group:eng#member@human:anne",
            "group:platform#member@human:bob",
            "group:eng#member@group:platform#member",
            "folder:roadmaps#viewer@group:eng#member",
            "folder:roadmaps#editor@human:carol",
            "document:q3-plan#parent@folder:roadmaps",
            "document:q3-plan#owner@human:dana",
            "agent:triage-bot#owner@human:bob",
            "document:handbook#viewer@human:*",
        ]
    )
    show("tuples written, revision", res.revision)

    step("3. Checks")
    for user, rel, obj in [
        ("human:anne", "viewer", "document:q3-plan"),
        ("human:bob", "viewer", "document:q3-plan"),
        ("human:carol", "editor", "document:q3-plan"),
        ("human:erin", "viewer", "document:q3-plan"),
        ("human:erin", "viewer", "document:handbook"),
    ]:
        d = kp.check(user, rel, obj, at_least_as_fresh=res.revision)
        show(f"{user} {rel} {obj}", "allowed" if d else "denied")

    step("4. Explain: the path that grants, or why not")
    console.print(kp.explain("human:bob", "viewer", "document:q3-plan").render())
    console.print(kp.explain("human:erin", "viewer", "document:q3-plan").render())

    step("5. List objects and list users")
    show("documents bob can view", sorted(kp.list_objects("human:bob", "viewer", "document")))
    show(
        "humans who can view q3-plan",
        sorted(kp.list_users("document:q3-plan", "viewer", ["human"])),
    )

    step("6. Exclusion: blocking beats every grant")
    kp.write_tuples(["document:q3-plan#blocked@human:bob"])
    show(
        "bob viewer q3-plan after block", bool(kp.check("human:bob", "viewer", "document:q3-plan"))
    )

    step("7. A contextual tuple: access for this request only")
    d = kp.check(
        "human:erin",
        "viewer",
        "document:q3-plan",
        contextual_tuples=["group:eng#member@human:erin"],
    )
    show("erin, if she were in eng (not stored)", "allowed" if d else "denied")
    show("erin, stored graph", bool(kp.check("human:erin", "viewer", "document:q3-plan")))

    step("8. A condition: the agent may read only during office hours")
    kp.write_tuples(
        [
            {
                "object": "document:q3-plan",
                "relation": "viewer",
                "user": "agent:triage-bot",
                "condition": {"name": "office_hours"},
            }
        ]
    )
    for hour in (10, 22):
        d = kp.check("agent:triage-bot", "viewer", "document:q3-plan", context={"hour": hour})
        show(f"triage-bot at {hour}:00", "allowed" if d else "denied")
    try:
        kp.check("agent:triage-bot", "viewer", "document:q3-plan")
    except KeyplaneError as exc:
        show("triage-bot with no hour in the context", f"error {exc.code}")

    step("9. An expiring grant: stops granting at its instant, no clean-up job")
    kp.write_tuples(
        [
            {
                "object": "document:handbook",
                "relation": "owner",
                "user": "human:erin",
                "expires_at": clock.now() + 3600,
            }
        ]
    )
    show("erin editor handbook now", bool(kp.check("human:erin", "editor", "document:handbook")))
    clock.advance(3601)
    show(
        "erin editor handbook one hour later",
        bool(kp.check("human:erin", "editor", "document:handbook")),
    )

    step("10. Bad input gets a clear error with a stable code")
    for bad in ["document:q3-plan#viewer@robot:x", "document:q3-plan#approver@human:anne"]:
        try:
            kp.write_tuples([bad])
        except KeyplaneError as exc:
            show(bad, f"{exc.code} ({exc.fga_code}): {exc.message}")
    console.print("\n[green]Tour finished.[/green] Next: `keyplane --help`, README quickstart.")


if __name__ == "__main__":
    main()
