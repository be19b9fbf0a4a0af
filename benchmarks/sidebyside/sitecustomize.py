"""With BENCH_PROFILE_DIR=DIR (bench_side_by_side.py --profile): SIGUSR1 starts cProfile in this process, SIGUSR2
stops it and writes DIR/<pid>-<n>.prof. py-spy cannot attach on every machine; this needs nothing installed."""

import os

if os.environ.get("BENCH_PROFILE_DIR"):
    import cProfile
    import signal

    _state = {"profile": None, "n": 0}

    def _start(*_: object) -> None:
        _state["profile"] = cProfile.Profile()
        _state["profile"].enable()

    def _stop(*_: object) -> None:
        profile = _state.pop("profile", None)
        if profile is not None:
            profile.disable()
            _state["n"] += 1
            profile.dump_stats(os.path.join(os.environ["BENCH_PROFILE_DIR"], f"{os.getpid()}-{_state['n']}.prof"))

    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _stop)
