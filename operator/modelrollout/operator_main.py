"""`modelrollout-operator`: run the Kopf operator with modelrollout's handlers and /metrics.

modelrollout-operator [--namespace NS ...| --all-namespaces] [--liveness URL]
                      [--peering NAME | --standalone] [--priority N] [--metrics-port 8000]
                      [--watch-routing httproutes|virtualservices|ingresses ...]
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence

import kopf


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="modelrollout-operator", description=__doc__)
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n", "--namespace", action="append", default=[], help="namespace to serve (repeatable)"
    )
    scope.add_argument(
        "-A", "--all-namespaces", action="store_true", help="serve the whole cluster (default)"
    )
    parser.add_argument("--liveness", metavar="URL", help="e.g. http://0.0.0.0:8080/healthz")
    peering = parser.add_mutually_exclusive_group()
    peering.add_argument("--peering", metavar="NAME", help="Kopf peering object (mandatory)")
    peering.add_argument("--standalone", action="store_true", help="run without peering")
    parser.add_argument("--priority", type=int, help="peering priority (give each replica its own)")
    parser.add_argument(
        "--lease",
        metavar="NAME",
        help="act only while holding this coordination.k8s.io Lease (default with --peering: "
        "modelrollout-<peering>), in $POD_NAMESPACE or the first --namespace",
    )
    parser.add_argument(
        "--metrics-port", type=int, default=8000, help="port of /metrics (0 disables it)"
    )
    parser.add_argument("--metrics-address", default="0.0.0.0")
    parser.add_argument(
        "--watch-routing",
        action="append",
        default=[],
        choices=("httproutes", "virtualservices", "ingresses"),
        help="watch these routing objects for changes by others (repeatable; needs list/watch)",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--debug", action="store_true")
    parser.add_argument("-q", "--quiet", action="store_true")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    kopf.configure(debug=args.debug, verbose=args.verbose, quiet=args.quiet)
    if not (args.verbose or args.debug):
        # Kopf logs every watch-event handler call at INFO: thousands a minute at scale.
        # Our own transitions are logged by modelrollout.shell.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)

    # Importing registers the handlers with Kopf's default registry.
    from modelrollout import handlers, metrics

    handlers.watch_routing(args.watch_routing)
    lease = args.lease or (f"modelrollout-{args.peering}" if args.peering else None)
    if lease:
        first = args.namespace[0] if args.namespace else "default"
        handlers.use_lease(os.environ.get("POD_NAMESPACE") or first, lease)
    if args.metrics_port:
        metrics.serve(args.metrics_port, args.metrics_address)
    kopf.run(
        clusterwide=not args.namespace,
        namespaces=tuple(args.namespace),
        liveness_endpoint=args.liveness,
        peering_name=args.peering,
        standalone=True if args.standalone else None,
        priority=args.priority,
    )


if __name__ == "__main__":
    main()
