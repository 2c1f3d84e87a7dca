"""Speed and memory: one hour of 2-channel 2 kHz EMG through conditioning, detection and features.

Run from the repository root::

    python benchmarks/emg_speed.py            # glutewake only
    python benchmarks/emg_speed.py --peers    # also BioSPPy / NeuroKit2 on 10 minutes

The hour is a 5-minute simulated recording (bursts every 1-3 s on both channels, all artefacts
on, SNR 10 dB) repeated 12 times. Reported: wall and CPU time of ``detect_contractions`` on the
whole array (conditioning, envelopes, detection, onset refinement and the per-contraction
features), then the same through ``ContractionStream`` in 60 s chunks with the peak Python
memory (tracemalloc) while streaming. Wall time depends on what else runs on the machine; CPU
time is printed next to it (the fairer figure on a loaded machine); both are the best of
``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
import tracemalloc
import warnings

import numpy as np

from glutewake.signal.emg import ContractionStream, concat_contractions, detect_contractions
from glutewake.simulate.emg import simulate_emg


def one_hour(fs_hz: float = 2000.0) -> np.ndarray:
    sim = simulate_emg(duration_s=300, fs_hz=fs_hz, n_channels=2, snr_db=10, seed=7)
    return np.tile(sim.emg_uv, (12, 1))


def timed(fn):  # type: ignore[no-untyped-def]
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peers", action="store_true", help="also time BioSPPy and NeuroKit2")
    ap.add_argument("--repeat", type=int, default=3, help="runs; the best wall and CPU are shown")
    args = ap.parse_args()
    fs = 2000.0
    x = one_hour(fs)
    print(f"input: {x.shape[0] / fs / 3600:.2f} h x {x.shape[1]} channels at {fs:g} Hz "
          f"({x.nbytes / 1e6:.0f} MB float64)")
    walls, cpus = [], []
    for _ in range(args.repeat):
        res, wall, cpu = timed(lambda: detect_contractions(x, fs))
        walls.append(wall)
        cpus.append(cpu)
    print(f"single pass (best of {args.repeat}): wall {min(walls):.2f} s, CPU {min(cpus):.2f} s, "
          f"{len(res)} contractions ({len(res) / 2:.0f} per channel-hour)")

    chunk = int(60 * fs)

    def streamed() -> int:
        stream = ContractionStream(fs)
        parts = [stream.push(x[i : i + chunk]) for i in range(0, x.shape[0], chunk)]
        parts.append(stream.close())
        return len(concat_contractions(parts))

    walls, cpus = [], []
    for _ in range(args.repeat):
        n_stream, wall, cpu = timed(streamed)
        walls.append(wall)
        cpus.append(cpu)
    print(f"streamed in 60 s chunks (best of {args.repeat}): wall {min(walls):.2f} s, "
          f"CPU {min(cpus):.2f} s, {n_stream} contractions")
    tracemalloc.start()
    streamed()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"peak traced memory while streaming (60 s chunks of {x[:chunk].nbytes / 1e6:.1f} MB): "
          f"{peak / 1e6:.0f} MB")

    if args.peers:
        ten = x[: int(600 * fs)]
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                import biosppy.signals.emg as bemg
            _, wall, cpu = timed(lambda: [bemg.emg(signal=ten[:, c], sampling_rate=fs, show=False)
                                          for c in range(2)])
            print(f"BioSPPy emg() on 10 min x 2 ch: wall {wall:.1f} s, CPU {cpu:.1f} s")
        except ImportError:
            print("note: biosppy not installed; skipped")
        try:
            import neurokit2 as nk

            def nk_run() -> None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    for c in range(2):
                        nk.emg_process(ten[: int(60 * fs), c], sampling_rate=int(fs))

            _, wall, cpu = timed(nk_run)
            print(f"NeuroKit2 emg_process on 1 min x 2 ch: wall {wall:.1f} s, CPU {cpu:.1f} s")
        except ImportError:
            print("note: neurokit2 not installed; skipped")


if __name__ == "__main__":
    main()
