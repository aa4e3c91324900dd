"""The `emafusion` command: `data check`, `collect`, `reproduce`, `eval`, `fit`, `route`, `ask`, `serve`,
`budget show|reset`, `self-optimising show|reset`."""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace


def _data_check(args: argparse.Namespace) -> int:
    from .data import DataValidationError
    from .data.check import label_coverage, resolve_suite, suite_warnings

    try:
        suite = resolve_suite(args.path)
    except DataValidationError as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return 1
    counts = suite.queries["benchmark"].value_counts().sort_index()
    print(f"ok: {suite!r}")
    for bench, n in counts.items():
        print(f"  {bench}: {n} queries")
    print(f"  models (cheapest first): {', '.join(suite.model_names)}")
    cov = label_coverage(suite)
    print(f"  taxonomy labels on the fit split (seed 0): {cov.labelled} of {cov.n_fit} queries "
          f"(own columns {cov.own}, rules {cov.rules}, both {cov.mixed}, none {cov.none})")
    for text in suite_warnings(suite):
        print(f"warning: {text}")
    from .judges.blind import blind_judges_warning

    warning = blind_judges_warning(suite)
    if warning:
        print(f"warning: {warning}")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from .reproduce import main as reproduce_main

    return reproduce_main(args.rest)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _load(path: str):
    """The config of a file, or None after printing (one line) what is wrong with it: the caller exits 2."""
    from .config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"invalid config: {_one_line(exc)}", file=sys.stderr)
        return None


def _system(path: str):
    """The live system of a config file, or None after printing what is wrong with the file."""
    from .config import ConfigError
    from .persist import FittedModelError
    from .system import EMAFusionSystem

    config = _load(path)
    if config is None:
        return None
    try:
        return EMAFusionSystem.build(config)
    except (ConfigError, FittedModelError) as exc:
        print(f"invalid config: {path}: {_one_line(exc)}", file=sys.stderr)
        return None


def _route(args: argparse.Namespace) -> int:
    system = _system(args.config)
    if system is None:
        return 2
    route = system.route(args.text)
    info = route.info.get("taxonomy", route.info)
    print(f"path: {route.path}")
    print(f"candidates (cheapest first): {' > '.join(route.candidates)}; without cascade: {route.single}")
    if "labels" in info:
        print(f"taxonomy labels: {info['labels']} (confidence {info['confidence']:.2f}, familiar {info['familiar']})")
        print("suitability: " + ", ".join(f"{m} {v:.3f}" for m, v in info["phi"].items()))
    if "predicted" in route.info:
        print("predicted scores: " + ", ".join(f"{m} {v:.3f}" for m, v in route.info["predicted"].items()))
    print(f"routing cost: {route.router_cost_usd:.2e} USD")
    return 0


def _ask(args: argparse.Namespace) -> int:
    import pandas as pd

    from .system import describe

    system = _system(args.config)
    if system is None:
        return 2
    if system.config.deadline_s is not None:  # the request's deadline starts now
        system = system.with_client(system.client.view(budget=system.client.budget,
                                                       deadline_s=system.config.deadline_s))
    result = system.ask(args.text)
    print(result.answer)
    print()
    with pd.option_context("display.width", 200, "display.max_colwidth", 80):
        print(describe(result).to_string(index=False))
    print(f"total cost: {result.cost_usd:.2e} USD (spent live this run: {system.client.spent_usd:.2e} USD; "
          f"cache hits: {system.client.stats.hits})")
    if not result.ok:
        reasons = "; ".join(r.answer.error or "no answer" for _, _, r in result.parts if not r.answer.ok)
        print(f"emafusion ask: no answer: {reasons}", file=sys.stderr)
        return 1
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .server import create_app
    from .server.app import warm_up

    from .config import ConfigError
    from .ledgers import describe
    from .online_store import LearnedStateError

    if args.workers < 1:
        print("emafusion serve: --workers must be at least 1", file=sys.stderr)
        return 2
    config = _load(args.config)
    if config is None:
        return 2
    if args.self_optimising:
        config = replace(config, self_optimising=replace(config.self_optimising, enabled=True))
    if args.workers == 1:
        system = _built(args.config, config)
        if system is None:
            return 2
        try:
            app = create_app(system, None)  # opens the self-optimising loop: its stored state is checked here
        except (ConfigError, LearnedStateError) as exc:
            print(_state_error(args.config, config, exc), file=sys.stderr)
            return 2
    else:  # each worker process builds its own system from the file; check the file (and its ledger) first
        import os
        from pathlib import Path

        from .online_store import check_document, read_document, state_key
        from .server.app import CONFIG_ENV, SELF_OPTIMISING_ENV
        from .system import make_client

        try:
            client = make_client(config)
            if config.self_optimising.enabled:
                ledger = client.budget.ledger
                check_document(read_document(ledger.store, state_key(ledger.name, config.fit_signature())),
                               config.fit_signature())
        except ConfigError as exc:
            print(f"invalid config: {args.config}: {_one_line(exc)}", file=sys.stderr)
            return 2
        except LearnedStateError as exc:
            print(_state_error(args.config, config, exc), file=sys.stderr)
            return 2
        os.environ[CONFIG_ENV] = str(Path(args.config).resolve())
        if args.self_optimising:
            os.environ[SELF_OPTIMISING_ENV] = "1"
    loop = "on" if config.self_optimising.enabled else "off"
    print(f"emafusion serve: OpenAI-compatible endpoint at http://{args.host}:{args.port}/v1 "
          f"(models: emafusion, emafusion-budget-<usd>; budget: {config.budget_usd} USD, {describe(config)}; "
          f"self-optimising {loop}; {args.workers} worker(s))", file=sys.stderr)
    if args.workers == 1:
        warm_up(system)
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    else:
        uvicorn.run("emafusion_core.server.app:app_from_environment", factory=True, workers=args.workers,
                    host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _built(path: str, config):
    """The live system of a loaded config, or None after printing what is wrong (one line)."""
    from .config import ConfigError
    from .persist import FittedModelError
    from .system import EMAFusionSystem

    try:
        return EMAFusionSystem.build(config)
    except (ConfigError, FittedModelError) as exc:
        print(f"invalid config: {path}: {_one_line(exc)}", file=sys.stderr)
        return None


def _state_error(path: str, config, exc: BaseException) -> str:
    from .online_store import LearnedStateError

    if not isinstance(exc, LearnedStateError):
        return f"invalid config: {path}: {_one_line(exc)}"
    return (f"invalid self-optimising state of {path} in its {config.ledger.backend} ledger store: {_one_line(exc)} "
            f"(`emafusion self-optimising reset --config {path}` forgets what was learned)")


def _opened(path: str, opener):
    """The config at `path` and what `opener(config)` opens from it (its ledger or store), or None for what
    could not be had after printing why in one line."""
    from .config import ConfigError

    config = _load(path)
    if config is None:
        return None, None
    try:
        return config, opener(config)
    except ConfigError as exc:
        print(f"invalid config: {path}: {_one_line(exc)}", file=sys.stderr)
        return config, None


def _self_optimising(args: argparse.Namespace) -> int:
    """`emafusion self-optimising show|reset`: the learned state a config's servers share."""
    from .ledgers import open_store
    from .online_store import LearnedStateError, check_document, read_document, reset_document, state_key

    config, store = _opened(args.config, open_store)
    if store is None:
        return 2
    key = state_key(config.ledger.name, config.fit_signature())
    if args.so_command == "reset":
        version = reset_document(store, key, config.fit_signature())
        print(f"reset {key} ({config.ledger.backend} store): version {version} is the fitted state")
        return 0
    try:
        parts = check_document(read_document(store, key), config.fit_signature())
    except LearnedStateError as exc:
        print(_state_error(args.config, config, exc), file=sys.stderr)
        return 2
    print(f"{key} ({config.ledger.backend} store)")
    if not parts:
        print("  nothing learned yet (version 0: the fitted state)")
        return 0
    print(f"  version {parts['version']}: " + ", ".join(f"{k} {v}" for k, v in parts["log"].to_dict().items()))
    return 0


def _budget(args: argparse.Namespace) -> int:
    from .ledgers import describe, open_ledger

    config, ledger = _opened(args.config, open_ledger)
    if ledger is None:
        return 2
    cap = config.budget_usd
    if args.budget_command == "reset":
        before = ledger.reset()
        print(f"reset {describe(config)}: spent ${before.spent:.6f} -> $0 (reservations in flight kept: "
              f"{before.holds}, ${before.reserved:.6f})")
        return 0
    t = ledger.totals()
    print(describe(config))
    print(f"  cap: {'none' if cap is None else f'${cap:.6f}'}")
    print(f"  spent: ${t.spent:.6f} (of which reservations charged in full at their lease's end: ${t.expired:.6f})")
    print(f"  reserved by calls in flight: ${t.reserved:.6f} ({t.holds} holds)")
    if cap is not None:
        print(f"  remaining: ${cap - t.spent - t.reserved:.6f}")
    print(f"  overshoot (reported beyond the reservations, not charged): ${t.overshoot:.6f}")
    return 0


def _fit(args: argparse.Namespace) -> int:
    from .config import ConfigError
    from .features import default_encoder
    from .persist import save_method
    from .system import fit_method

    config = _load(args.config)
    if config is None:
        return 2
    try:
        method = fit_method(config, default_encoder())
    except ConfigError as exc:
        print(f"invalid config: {args.config}: {_one_line(exc)}", file=sys.stderr)
        return 2
    folder = save_method(method, args.out, fit=config.fit_signature())
    print(f"fitted on {config.fit_suite} (seed {config.fit_seed}) for pool {', '.join(method.model_names_)}; "
          f"saved to {folder} (name it in the config as `fitted: {folder}`)")
    return 0


def _collect(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .collect import QueriesFileError, SandboxUnavailable, Scorer, collect, load_queries, write_collected
    from .collect.run import check_out
    from .config import ConfigError
    from .judges import LLMJudge
    from .system import make_client

    config = _load(args.config)
    if config is None:
        return 2
    client = None
    try:
        check_out(args.out)
        queries = load_queries(args.queries)
        if args.judge is not None and args.judge not in [m.name for m in config.models]:
            raise ConfigError(f"--judge: {args.judge!r} is not a model of the pool "
                              f"({', '.join(m.name for m in config.models)})")
        client = make_client(config, progress=True, reuse_failures=True, concurrency=args.concurrency)
        judge = LLMJudge(client, args.judge) if args.judge else None
        collected = collect(config, queries, client, Scorer(judge=judge), Path(args.out).name)
    except (QueriesFileError, ConfigError, SandboxUnavailable, ValueError) as exc:
        print(f"emafusion collect: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if client is not None:  # the interrupted batch was cancelled (LoopThread.run); end the loop and the cache
            client.stop_loop()
            getattr(client.cache.store, "close", lambda: None)()  # the diskcache database
        print("\nemafusion collect: interrupted; every answer received so far is cached: rerun the same command "
              "to resume (nothing is paid twice)", file=sys.stderr)
        return INTERRUPTED
    folder = write_collected(collected, args.out)
    for line in collected.report():
        print(line)
    print(f"wrote {folder} (check it: emafusion data check {folder})")
    return 0 if collected.complete else 1


def _eval(args: argparse.Namespace) -> int:
    from .evaluation.__main__ import main as eval_main

    return eval_main(args.rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emafusion", description="EMAFusion-style LLM selection: "
                                     "reproduce the results, check your own data.")
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="work with suites (queries, outcomes, models tables)")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    check = data_sub.add_parser("check", help="validate a suite (a folder, or a suite's name under data/)",
                                description="Validate a suite folder. Exit 0 when valid, with warnings of what will "
                                            "be weak (taxonomy labels, identical prices); else print the file, "
                                            "column and first offending row (as the line number in a CSV file) and exit 1.")
    check.add_argument("path", help="folder holding queries.*, outcomes.*, models.* (and optionally judgments.*), "
                                    "or the name of a suite folder under data/")
    check.set_defaults(func=_data_check)
    col = sub.add_parser("collect", help="run every pool model on every query through the gateway, score the "
                                          "answers, and write a suite (resumable from the cache)",
                         description="Every model of the config's pool on every query of the queries file (CSV or "
                                     "JSON Lines: query_id, prompt, scorer, reference, tests, optional benchmark, "
                                     "category, question), scored per query, written as a suite folder. Exit 0 when "
                                     "complete, 1 when failed calls remain that a rerun may cure (rerun to resume: "
                                     "answers already paid for come from the cache), 2 on bad input, 130 on Ctrl-C.")
    col.add_argument("--config", required=True, help="YAML configuration (the pool; budget_usd caps the run)")
    col.add_argument("--queries", required=True, help="queries file (.csv or .jsonl)")
    col.add_argument("--out", required=True, help="suite folder to write, e.g. data/mypool (its name is the suite's)")
    col.add_argument("--judge", default=None, help="pool model that grades the queries whose scorer is 'judge'")
    col.add_argument("--concurrency", type=int, default=4, help="calls in flight per model (default 4)")
    col.set_defaults(func=_collect)
    rep = sub.add_parser("reproduce", help="run every notebook with papermill (same as `make reproduce`)")
    rep.add_argument("rest", nargs=argparse.REMAINDER, help="options passed on (--quick, --only NAME ...)")
    rep.set_defaults(func=_reproduce)
    ev = sub.add_parser("eval", help="every baseline and the EMAFusion variants on a suite, by replay",
                        description="Same as `python -m emafusion_core.evaluation`: pass --suite NAME, --seeds ..., "
                                    "--encoder minilm|hashing, --out DIR, --holdout BENCHMARK, --no-emafusion.")
    ev.add_argument("rest", nargs=argparse.REMAINDER, help="options passed on (see description)")
    ev.set_defaults(func=_eval)
    for name, func, text in (("route", _route, "which models a request would go to, and why (no model is called "
                                                "unless the slow classifier is configured)"),
                             ("ask", _ask, "answer a request live through the configured routers, cascade and judges")):
        cmd = sub.add_parser(name, help=text, description=text + ". Configuration: one YAML file (see examples/local.yaml).")
        cmd.add_argument("text", help="the request")
        cmd.add_argument("--config", required=True, help="YAML configuration (model pool, router, cascade, budget)")
        cmd.set_defaults(func=func)
    fit = sub.add_parser("fit", help="fit the configured system once and save it (route, ask and serve then load it)",
                         description="Fit the routers and judges of a config on its fit suite and save them to a "
                                     "folder, without pickles. Name the folder in the config (`fitted: DIR`).")
    fit.add_argument("--config", required=True, help="YAML configuration (model pool, fit section)")
    fit.add_argument("--out", required=True, help="folder to write (manifest.json, arrays.npz)")
    fit.set_defaults(func=_fit)
    serve = sub.add_parser("serve", help="an OpenAI-compatible HTTP endpoint (/v1/chat/completions, /v1/models, "
                                         "/health) answering through the configured system",
                           description="Serve the configured system over HTTP, OpenAI-style: point any OpenAI client "
                                       "at http://HOST:PORT/v1 with model 'emafusion', or 'emafusion-budget-<usd>' to "
                                       "cap one request's spend. Answers carry an extra 'emafusion' field (model that "
                                       "answered, judges' verdicts, cost). The config's budget_usd caps the server.")
    serve.add_argument("--config", required=True, help="YAML configuration (model pool, router, cascade, budget)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback only)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                       help="uvicorn log level")
    serve.add_argument("--workers", type=int, default=1,
                       help="worker processes (default 1); they share the cache and one budget ledger")
    serve.add_argument("--self-optimising", action="store_true",
                       help="turn the self-optimising loop on (as `self_optimising: {enabled: true}` in the config, "
                            "whose other knobs apply): the judges' verdicts on served answers update the routers, "
                            "the learned state is kept beside the budget ledger and shared by the workers; "
                            "GET /v1/emafusion/self-optimising reports it")
    serve.set_defaults(func=_serve)
    so = sub.add_parser("self-optimising", help="show or reset the learned state of serve's self-optimising loop",
                        description="What `serve` with self_optimising learned from its judges lives in the store of "
                                    "the config's budget ledger, shared by workers and restarts. `show` prints its "
                                    "version and counts; `reset` returns it to the fitted state.")
    _show_reset(so, "so_command", _self_optimising, "YAML configuration (fit section, pool, ledger)",
                "print the stored version and what was folded in",
                "forget what was learned (the next version is the fitted state)")
    budget = sub.add_parser("budget", help="show or reset what the config's budget has spent (its ledger)",
                            description="The config's budget_usd is one cap for every process serving the config: "
                                        "its spent total lives in a ledger (ledger: disk beside cache_dir by default, "
                                        "or redis) and survives restarts. It resets only here, or at the start of a "
                                        "new budget_period (day or month, UTC).")
    _show_reset(budget, "budget_command", _budget, "YAML configuration (budget_usd, budget_period, ledger)",
                "print spent, reserved, remaining and overshoot",
                "zero what the current period has spent (the operator's decision)")
    return parser


def _show_reset(parser, dest: str, func, config_help: str, show_help: str, reset_help: str) -> None:
    """The `show` and `reset` subcommands of a command over what a config's store keeps (budget, learned state)."""
    sub = parser.add_subparsers(dest=dest, required=True)
    for name, text in (("show", show_help), ("reset", reset_help)):
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.add_argument("--config", required=True, help=config_help)
        cmd.set_defaults(func=func)


INTERRUPTED = 130  # the shell's code for Ctrl-C


def main(argv: list[str] | None = None) -> int:
    """argv None: run as the program (sys.argv). Then an interrupted command exits at once, see _exit_now."""
    as_program = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    # `eval` and `reproduce` pass their options on as they are (argparse would read `--suite` as its own)
    if argv and argv[0] == "eval":
        return _eval(argparse.Namespace(rest=argv[1:]))
    if argv and argv[0] == "reproduce":
        return _reproduce(argparse.Namespace(rest=argv[1:]))
    args = build_parser().parse_args(argv)
    code = args.func(args)
    if as_program and code == INTERRUPTED:
        _exit_now(code)
    return code


def _exit_now(code: int) -> None:
    """End the program without the interpreter's exit hooks, after an interrupt has been handled (the batch
    cancelled, the loop stopped, the cache closed: every answer received is committed). litellm's hooks run
    coroutines and close its HTTP clients on a fresh event loop; after a Ctrl-C in `collect` that exit once hung
    for over 120 s in CI, and none of ours needs them. Only when run as the program: main([...]) just returns."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    raise SystemExit(main())
