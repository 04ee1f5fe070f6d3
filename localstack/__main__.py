"""``./deploy.sh local [--once]``: run classcal on this machine.

Without ``--once`` it prints every URL and serves until interrupted. With ``--once`` it
runs the demo (the admin connects Google through the real OAuth function, or with
``--auth-mode service_account`` the connect page confirms the delegation; a student's
booking is paid and scheduled, its Meet link printed), stops everything and exits 0,
or non-zero with the reason.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

from localstack import demo, stack
from localstack.processes import MissingComponent

DEFAULT_BASE_PORT = 8090


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./deploy.sh local", description=__doc__.split("\n")[0])
    parser.add_argument("--once", action="store_true", help="run the demo, then stop and exit")
    parser.add_argument(
        "--base-port",
        type=int,
        default=None,
        help=f"first of consecutive ports to use (default {DEFAULT_BASE_PORT}; --once: free ports)",
    )
    parser.add_argument("--logs", type=Path, default=None, help="folder for every process's log")
    parser.add_argument(
        "--auth-mode",
        choices=stack.AUTH_MODES,
        default=os.environ.get("CLASSCAL_LOCAL_AUTH_MODE") or "oauth",
        help="how Calendar calls authenticate: the admin's refresh token (oauth, the default) "
        "or a service account through domain-wide delegation, keyless unless --with-key "
        "(default from CLASSCAL_LOCAL_AUTH_MODE)",
    )
    parser.add_argument(
        "--with-key",
        action="store_true",
        help="service_account mode: a key file in Secret Manager instead of keyless signJwt",
    )
    args = parser.parse_args(argv)

    log_dir = args.logs or Path(tempfile.mkdtemp(prefix="classcal-local-"))
    base_port = args.base_port if args.base_port or args.once else DEFAULT_BASE_PORT
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    print(f"starting the local stack (logs in {log_dir}) ...", flush=True)
    try:
        with stack.running(
            log_dir, base_port, auth_mode=args.auth_mode, with_key=args.with_key
        ) as local:
            for label, url in local.urls().items():
                print(f"  {label:<24} {url}", flush=True)
            if args.once:
                demo.run(local)
                print("demo finished: stopping everything", flush=True)
                return 0
            demo.prepare_google(local)
            print("ready: publish payments, or Ctrl-C to stop", flush=True)
            stop.wait()
            print("stopping ...", flush=True)
            return 0
    except MissingComponent as error:
        print(f"cannot start: {error}", file=sys.stderr)
        return 2
    except demo.DemoFailed as error:
        print(f"demo failed: {error}\n(logs in {log_dir})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
