"""`tiswatch evidence verify`: are the evidence files still what was captured?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Evidence kept for flagged listings.")


@app.command()
def verify(
    paths: Annotated[list[Path] | None, typer.Argument(help="evidence folders, manifest.json files, or trees of them "
                                                        "(default: the data directory's evidence/)")] = None,
) -> None:
    """Check every file of the evidence folders against the SHA-256 in their manifest.json.

    Prints each problem (a file changed, missing, or not in the manifest) and exits 1 when there is
    one; with none, prints how many folders and files were checked."""
    from cli import state
    from listings.evidence import manifests_under, verify_manifest

    roots = paths or [state.settings().evidence_dir]
    folders = [f for r in roots for f in manifests_under(r)]
    if not folders:
        print(f"no evidence folders under {', '.join(str(r) for r in roots)}")
        raise typer.Exit(1)
    problems = 0
    files = 0
    for f in folders:
        bad = verify_manifest(f)
        files += sum(1 for p in f.iterdir() if p.is_file())
        for b in bad:
            print(b)  # plain: a path per line, for scripts and case files
        problems += len(bad)
    if problems:
        print(f"{problems} problems in {len(folders)} evidence folders")
        raise typer.Exit(1)
    print(f"intact: {len(folders)} evidence folders, {files} files, every SHA-256 as in its manifest")
