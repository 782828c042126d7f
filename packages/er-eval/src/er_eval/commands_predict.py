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
    format_: Annotated[
        str,
        typer.Option(
            "--format",
            help="parquet or csv: the predictions file (OUT/er-eval/<id>/predictions.<format>) "
            "the manifest names. stdout stays the message stream.",
        ),
    ] = "parquet",
    print_encoders: Annotated[
        bool,
        typer.Option(
            "--print-encoders",
            help="Print the run's modalities and encoders (`modality<TAB>encoder`, one a line: "
            "what new data needs from er-features extract) and exit; reads no input.",
        ),
    ] = False,
    quiet: Quiet = False,
    threads: Threads = None,
) -> None:
    """Apply a trained run to a dataset: rebuild its network, check its weights, predict every
    utterance (all splits); pass the stream on and append a PredictionManifest. The stream needs
    the run's modalities' features from the run's encoders (same cache key and width).
    Progress (utterances, rate, ETA) goes to stderr unless --quiet. Columns: id, split, then
    per task pred_<task>, gold_<task> (when the table has labels) and <task>.p.<class>.

    Example: er-data prepare table --root new/ -c new.toml | er-features extract -m text -e minilm
    | er-eval predict --run runs/default/meld--emotion/F--b16--ce/T-concat/0123abcd4567--0

    New clips: er-data prepare files --video clip.mp4 | er-features extract -m video -e
    fer-xception | er-eval predict --run RUN --format csv (tools/predict.sh RUN CLIP... does it all)
    """
    from er_core import UsageError, read_stream, set_threads, write_stream

    from er_eval.prediction import FORMATS, check_device, run_encoders
    from er_eval.prediction import predict as run_predict

    if print_encoders:
        for modality, encoder in run_encoders(run).items():
            print(f"{modality}\t{encoder}")
        return
    if format_ not in FORMATS:
        raise UsageError(f"unknown --format '{format_}'", at="--format", hint="use parquet or csv")
    check_device(device)
    set_threads(threads)
    envelopes = read_stream(inputs or [])
    manifest = run_predict(
        envelopes, run, out=out, device=device, batch_size=batch_size, format=format_, quiet=quiet
    )
    write_stream(envelopes, [manifest])
