"""`er-eval predict`: a thin command over er_eval.prediction (torch is imported only when it runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from er_core import Quiet, Threads

from er_eval.app import app


@app.command()
def predict(
    inputs: Annotated[
        list[str] | None,
        typer.Argument(
            help="The dataset and its features: NDJSON streams or .safetensors; '-' or none: stdin.",
            show_default=False,
        ),
    ] = None,
    run: Annotated[
        str,
        typer.Option(
            "--run", help="The trained run: its folder, or its run.json.", show_default=False
        ),
    ] = ...,  # type: ignore[assignment]
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Output root; predictions go to OUT/er-eval/<id>/."),
    ] = Path("er-out"),
    device: Annotated[str, typer.Option("--device", help="cpu, cuda or cuda:N.")] = "cpu",
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            min=1,
            help="Dialogues per forward pass (utterances for a run without a context model). "
            "Default: the run's train.eval_batch_size.",
        ),
    ] = None,
    quiet: Quiet = False,
    threads: Threads = None,
) -> None:
    """Apply a trained run to a dataset: rebuild its network, check its weights, predict every
    utterance (all splits); pass the stream on and append a PredictionManifest. The stream needs
    the run's modalities' features from the run's encoders (same cache key and width).
    Progress (utterances, rate, ETA) goes to stderr unless --quiet.

    Example: er-data prepare table --root new/ -c new.toml | er-features extract -m text -e minilm
    | er-eval predict --run runs/default/meld--emotion/F--b16--ce/T-concat/0123abcd4567--0
    """
    from er_core import read_stream, set_threads, write_stream

    from er_eval.prediction import check_device
    from er_eval.prediction import predict as run_predict

    check_device(device)
    set_threads(threads)
    envelopes = read_stream(inputs or [])
    manifest = run_predict(
        envelopes, run, out=out, device=device, batch_size=batch_size, quiet=quiet
    )
    write_stream(envelopes, [manifest])
