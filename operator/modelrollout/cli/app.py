"""Argument parsing and the commands of `kubectl modelrollout`."""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TextIO

from modelrollout.cli import controls, render
from modelrollout.cli.kubeapi import CliError, Connection, ModelDeployments

CLEAR_SCREEN = "\x1b[H\x1b[2J"


def _now() -> datetime:
    return datetime.now(UTC)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl modelrollout",
        description="Watch and steer progressive rollouts of ModelDeployments.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namespace", help="namespace (default: the context's)")
    common.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )
    common.add_argument("--context", help="kubeconfig context (default: the current one)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str, needs_name: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        if needs_name:
            p.add_argument("name", metavar="NAME", help="the ModelDeployment")
        return p

    status = add("status", "Show a rollout: steps, weights, analysis verdicts, history.")
    status.add_argument("-w", "--watch", action="store_true", help="follow changes live")
    status.add_argument(
        "--timeout", type=int, default=None, help="with --watch: stop after this many seconds"
    )
    lst = add("list", "List ModelDeployments with their rollout state.", needs_name=False)
    lst.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    add("history", "Finished rollouts, numbered for `undo --to-revision`.")
    promote = add("promote", "Go past the current step (a pause or an analysis).")
    promote.add_argument("--full", action="store_true", help="skip every remaining step")
    add("abort", "Send all traffic back to the stable revision now (phase Degraded).")
    add("retry", "Roll out the spec's model again after a rollback or abort.")
    add("pause", "Freeze the rollout where it is (sets spec.paused).")
    add("resume", "Continue a rollout frozen with pause (clears spec.paused).")
    undo = add("undo", "Serve an earlier revision's model again (rewrites spec.model).")
    undo.add_argument(
        "--to-revision",
        metavar="N",
        help="history number or revision hash (default: the previous stable revision)",
    )
    return parser


def run(argv: Sequence[str], out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = build_parser().parse_args(list(argv))
    try:
        api = ModelDeployments(Connection(args.kubeconfig, args.context, args.namespace))
        handler = COMMANDS[args.command]
        return handler(api, args, out)
    except CliError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def cmd_status(api: ModelDeployments, args: argparse.Namespace, out: TextIO) -> int:
    if not args.watch:
        print(render.status_view(api.get(args.name), _now()), file=out)
        return 0
    clear = out.isatty()
    while True:
        for obj in api.watch(args.name, args.timeout):
            if clear:
                out.write(CLEAR_SCREEN)
            else:
                print(f"--- {_now():%H:%M:%S}", file=out)
            print(render.status_view(obj, _now()), file=out, flush=True)
        if args.timeout:
            return 0
        # The API server ends every watch after a while: follow on until Ctrl-C.


def cmd_list(api: ModelDeployments, args: argparse.Namespace, out: TextIO) -> int:
    items = api.list(args.all_namespaces)
    items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
    print(render.list_view(items, _now(), args.all_namespaces), file=out)
    return 0


def cmd_history(api: ModelDeployments, args: argparse.Namespace, out: TextIO) -> int:
    lines = render.history_lines(api.get(args.name).get("status") or {}, _now())
    print("\n".join(lines) if lines else "No finished rollouts yet.", file=out)
    return 0


def _control(action: str) -> Callable[[ModelDeployments, argparse.Namespace, TextIO], int]:
    def command(api: ModelDeployments, args: argparse.Namespace, out: TextIO) -> int:
        name = "promote-full" if action == "promote" and args.full else action
        obj = api.get(args.name)
        reason = controls.refusal(name, obj)
        if reason:
            raise CliError(f"{args.name}: {reason}")
        token = controls.request_token(_now(), uuid.uuid4().hex)
        api.patch_status(args.name, controls.control_patch(name, token))
        print(f"modeldeployment.modelrollout.io/{args.name} {name} requested", file=out)
        return 0

    return command


def _set_paused(paused: bool) -> Callable[[ModelDeployments, argparse.Namespace, TextIO], int]:
    def command(api: ModelDeployments, args: argparse.Namespace, out: TextIO) -> int:
        api.patch_spec(args.name, {"spec": {"paused": paused}})
        verb = "paused" if paused else "resumed"
        print(f"modeldeployment.modelrollout.io/{args.name} {verb}", file=out)
        return 0

    return command


def cmd_undo(api: ModelDeployments, args: argparse.Namespace, out: TextIO) -> int:
    obj = api.get(args.name)
    try:
        revision = controls.undo_target(obj, args.to_revision)
    except ValueError as err:
        raise CliError(f"{args.name}: {err}") from err
    status = obj.get("status") or {}
    if revision == status.get("stableRevision") and not status.get("canaryRevision"):
        # Mid-rollout, undo to the stable is allowed: it ends the rollout like a Git revert.
        raise CliError(f"{args.name}: revision {revision} is already serving")
    model = controls.model_from_history(obj.get("status") or {}, revision)
    if model is None:
        model = _model_from_revision_deployment(api, args.name, revision)
    current = (obj.get("spec") or {}).get("model") or {}
    api.patch_spec(args.name, controls.model_patch(current, model))
    print(
        f"modeldeployment.modelrollout.io/{args.name} rolled back to revision {revision} "
        f"(model version {model.get('version', '?')})",
        file=out,
    )
    print(
        "note: Git still names the newer model; change it there too, or a GitOps sync reverts this",
        file=out,
    )
    return 0


def _model_from_revision_deployment(
    api: ModelDeployments, name: str, revision: str
) -> dict[str, object]:
    deployment = api.revision_deployment(name, revision)
    if deployment is None:
        raise CliError(
            f"{name}: revision {revision} is neither in the history nor kept "
            "(spec.revisionHistoryLimit); change spec.model in Git instead"
        )
    try:
        return controls.model_from_deployment(deployment)
    except ValueError as err:
        raise CliError(f"{name}: {err}") from err


COMMANDS: dict[str, Callable[[ModelDeployments, argparse.Namespace, TextIO], int]] = {
    "status": cmd_status,
    "list": cmd_list,
    "history": cmd_history,
    "promote": _control("promote"),
    "abort": _control("abort"),
    "retry": _control("retry"),
    "pause": _set_paused(True),
    "resume": _set_paused(False),
    "undo": cmd_undo,
}
