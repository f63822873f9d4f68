"""Command line entry point (`e2e/apiserver/serve`): builds the server,
writes kubeconfigs, loads a scenario, prints `ready URL`, runs until
SIGTERM/SIGINT.
"""
import argparse
import shutil
import signal
import sys
import threading

from . import certs, faults as faultsmod, kubeconfig
from .api import APIServer
from .reqlog import RequestLog
from .server import App, APIHTTPServer


def parse_args(argv):
    p = argparse.ArgumentParser(prog="serve", description="Local Kubernetes API server for "
                                                          "Tailor tests and demos.")
    p.add_argument("--scenario", help="scenario file to load at start-up")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = pick a free one)")
    p.add_argument("--http", action="store_true", help="serve plain HTTP instead of HTTPS")
    p.add_argument("--kubeconfig", help="write the admin kubeconfig here")
    p.add_argument("--sa-kubeconfig", action="append", default=[], metavar="NS/NAME=PATH",
                   help="write a kubeconfig for ServiceAccount NS/NAME (repeatable)")
    p.add_argument("--watch-history", type=int, default=1000,
                   help="watch events kept per resource (older resourceVersions get 410)")
    p.add_argument("--faults", default="", help="fault spec, e.g. close-watch=5,error-rate=0.1")
    p.add_argument("--request-log", help="append one JSON line per request to this file")
    p.add_argument("--bookmark-interval", type=float, default=5.0,
                   help="seconds between watch BOOKMARK events")
    sim = p.add_argument_group("simulation (controllers, scheduler, kubelets; on by default "
                               "with --scenario)")
    sim.add_argument("--simulate", dest="simulate", action="store_true", default=None,
                     help="run the simulation (default: only when a scenario is loaded)")
    sim.add_argument("--no-simulate", dest="simulate", action="store_false",
                     help="no simulation: objects change only when clients write them")
    sim.add_argument("--ready-delay", type=float, default=1.0, metavar="SECONDS",
                     help="a new pod is Running after half of it and Ready after all of it "
                          "(default 1)")
    sim.add_argument("--time-scale", type=float, default=1.0, metavar="FACTOR",
                     help="usage profiles run this many times faster than the wall clock "
                          "(default 1; 3600 makes a day pass in 24 s)")
    sim.add_argument("--sim-tick", type=float, default=1.0, metavar="SECONDS",
                     help="period of the OOM check (default 1)")
    sim.add_argument("--crash-backoff", type=float, default=10.0, metavar="SECONDS",
                     help="first CrashLoopBackOff delay; doubles up to 30x (default 10, as the "
                          "kubelet)")
    sim.add_argument("--resize-delay", type=float, default=0.5, metavar="SECONDS",
                     help="an accepted in-place resize is actuated after this long "
                          "(default 0.5)")
    args = p.parse_args(argv)
    sa = []
    for spec in args.sa_kubeconfig:
        ident, sep, path = spec.partition("=")
        ns, slash, name = ident.partition("/")
        if not sep or not slash or not ns or not name or not path:
            p.error(f"--sa-kubeconfig wants NS/NAME=PATH, got {spec!r}")
        sa.append((ns, name, path))
    args.sa = sa
    try:
        args.fault_settings = faultsmod.parse_spec(args.faults)
    except ValueError as e:
        p.error(str(e))
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    history = args.fault_settings.get("watch-history", args.watch_history)
    api = APIServer(history_size=history)
    faults = faultsmod.Faults()
    faults.update(args.fault_settings)
    app = App(api, faults, RequestLog(args.request_log), bookmark_interval=args.bookmark_interval)

    tls_ctx, ca_pem, tls_dir = (None, None, None) if args.http else certs.generate()
    server = APIHTTPServer(app, args.port, tls_ctx)
    url = f"{'http' if args.http else 'https'}://127.0.0.1:{server.port}"

    scenario_module = sc = None
    if args.scenario:
        from . import scenario_loader
        try:
            sc, _ = scenario_loader.load(api, args.scenario)
        except ValueError as e:
            print(f"serve: bad scenario {args.scenario}: {e}", file=sys.stderr)
            return 2
        scenario_module = scenario_loader._scenario_module()
    simulation = None
    if args.simulate or (args.simulate is None and args.scenario):
        from .simulation import Options, Simulation
        simulation = Simulation(api, Options(ready_delay=args.ready_delay, tick=args.sim_tick,
                                             time_scale=args.time_scale,
                                             crash_backoff=args.crash_backoff,
                                             resize_delay=args.resize_delay),
                                scenario_module, sc).start()
    if args.kubeconfig:
        kubeconfig.write(args.kubeconfig, url, api.authn.admin_token(), "admin", ca_pem)
    else:
        api.authn.admin_token()
    for ns, name, path in args.sa:
        api.ensure_service_account(ns, name)
        token = api.authn.token_for_service_account(ns, name)
        kubeconfig.write(path, url, token, f"system:serviceaccount:{ns}:{name}", ca_pem)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              daemon=True)
    thread.start()
    print(f"ready {url}", flush=True)
    print(f"serve: listening on {url}", file=sys.stderr, flush=True)
    while not stop.wait(0.5):
        pass
    print("serve: shutting down", file=sys.stderr, flush=True)
    if simulation is not None:
        simulation.stop()
    server.shutdown()
    server.server_close()
    app.reqlog.close()
    if tls_dir:
        shutil.rmtree(tls_dir, ignore_errors=True)
    return 0
