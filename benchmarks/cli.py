"""``gandapt-bench``: a thin click layer over :func:`gandapt.benchmarks.suite.run_bench`.

torch and the benchmark modules load inside the command, so ``--help`` is fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

import click

from gandapt.cli.errors import user_errors

_CTX = {"help_option_names": ["-h", "--help"], "show_default": True}


def _ints(text: Optional[str], what: str) -> Optional[Tuple[int, ...]]:
    from gandapt.errors import GandaptError

    if text is None:
        return None
    try:
        values = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise GandaptError(f"bad {what} {text!r}; give comma-separated integers, e.g. 1,4,16") from None
    if not values:
        raise GandaptError(f"empty {what}; give comma-separated integers, e.g. 1,4,16")
    return values


@click.command("bench", context_settings=_CTX)
@click.option("--quick/--full", default=False,
              help="--quick: embedded model + a narrow 256 px config, batches 1 and 4, short timings (under 2 min "
                   "on 2 cores). --full: embedded + 256/512/1024 px random-weight configs, batches 1/4/16.")
@click.option("--only", default=None, help="Comma-separated sections: latency, switching, memory, pipeline, peer "
                                           "[default: all].")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads for torch and onnxruntime [default: every core this process may use].")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("benchmarks/results"),
              help="Results folder: one new JSON per run, summary.md and plots regenerated.")
@click.option("--model", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Checkpoint benchmarked as the 'embedded' model [default: the shipped avatar model].")
@click.option("--bundle", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Bundle of the switching and pipeline sections [default: the shipped bundle].")
@click.option("--resolutions", default=None, help="Random-weight models, e.g. 256,512 [default: per mode].")
@click.option("--batches", default=None, help="Batch sizes, e.g. 1,4,16 [default: per mode].")
@click.option("--cell-budget", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds one latency cell may take; larger cells are skipped and recorded [default: 10 quick, 60 full].")
@click.option("--seed", type=int, default=0, help="Seed of random weights and inputs.")
@click.option("--no-plots", is_flag=True, help="Do not write the PNG plots.")
@click.option("--report-only", is_flag=True, help="Measure nothing: regenerate summary.md and the plots from the JSON in --out.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@user_errors()
def main(quick: bool, only: Optional[str], threads: Optional[int], out: Path, model: Optional[Path],
         bundle: Optional[Path], resolutions: Optional[str], batches: Optional[str], cell_budget: Optional[float],
         seed: int, no_plots: bool, report_only: bool, quiet: bool) -> None:
    """Benchmark the generator's backends and forms, domain switching, memory scaling and the live pipeline.

    Every run writes a new JSON (device, CPU/GPU model, versions, threads, settings, results) into
    --out and regenerates summary.md and the plots from all the JSON there. Numbers are measured on
    this machine as it is: the JSON records the load average, so a busy machine shows.

    \b
    Examples:
      gandapt-bench --quick                      # about a minute on 2 cores
      gandapt-bench                              # the full run (about 15 minutes on 2 cores)
      gandapt-bench --only latency --resolutions 256 --batches 1,4 --threads 2
      gandapt-bench --report-only                # rebuild summary.md and the plots
    GPU machines: python -m gandapt.benchmarks.gpu (eager vs CUDA graphs, plugin kernel).
    """
    from gandapt.benchmarks.flops import parse_resolutions
    from gandapt.benchmarks.suite import SECTIONS, BenchOptions, run_bench

    if report_only:
        from gandapt.benchmarks.report import write_report

        if not out.is_dir():
            raise click.ClickException(f"{out} does not exist; run gandapt-bench first or give --out")
        for path in write_report(out, plots=not no_plots):
            click.echo(f"wrote {path}")
        return
    options = BenchOptions(
        quick=quick, only=tuple(s.strip() for s in only.split(",") if s.strip()) if only is not None else SECTIONS,
        threads=threads, out=str(out), model=str(model) if model else None, bundle=str(bundle) if bundle else None,
        resolutions=parse_resolutions(resolutions) if resolutions is not None else None,
        batches=_ints(batches, "--batches"), cell_budget=cell_budget, seed=seed, plots=not no_plots,
        progress=not quiet)
    click.echo(f"wrote {run_bench(options)}")


if __name__ == "__main__":
    main()
