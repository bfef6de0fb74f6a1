"""GitOps commands of `mobile-mlops`: verify, release propose, promote, rollback, lineage check."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from cli.options import settings
from pipelines.core.errors import PipelineError
from pipelines.release.gitops.git import remove_stale_scratch

Add = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def project_settings(args: argparse.Namespace, release: Path):  # Settings, imported lazily
    """The release's project: --params, else ./params.yaml, else the first params.yaml above the release."""
    from pipelines.core.config import load_settings

    candidates = [Path(args.params)] if args.params else [Path("params.yaml")]
    candidates += [parent / "params.yaml" for parent in release.resolve().parents]
    for params in candidates:
        if params.is_file():
            return load_settings(params)
    raise PipelineError(f"{release}: no project params.yaml found; pass --params FILE")


def verify_keys(args: argparse.Namespace, release: Path) -> list[Path]:
    """--public-key files; else the trusted keys of the project (--params, ./params.yaml, or the release's)."""
    from pipelines.release.signing import trusted_keys

    if args.public_key:
        return [Path(p) for p in args.public_key]
    try:
        return trusted_keys(project_settings(args, release))
    except PipelineError as exc:
        if "no project params.yaml" not in str(exc):
            raise
        raise PipelineError(f"{release}: no project params.yaml found for its trusted keys; pass --public-key "
                            "FILE") from exc


def cmd_verify(args: argparse.Namespace) -> int:
    from pipelines.release.attest import GATES, PROVENANCE, verify_attestations
    from pipelines.release.dvc_records import read_records, without_records
    from pipelines.release.folder import verify_release
    from pipelines.release.signing import fingerprint, verify_folder

    folder = Path(args.path)
    with without_records(folder) as view:  # files kept in the DVC remote: fetched, and matching their .dvc records
        manifest = verify_release(view)
        keys = verify_keys(args, folder)
        key = verify_folder(view, keys)
        attested = verify_attestations(view, keys)  # provenance and gate verdicts, signed, naming these files
    fetched = read_records(folder) if folder.is_dir() else {}
    lineage = manifest.lineage
    print(f"OK {args.path}: {len(manifest.files)} files verified, signature by {key} (sha256 {fingerprint(key)[:16]}); "
          f"{lineage.model_name} v{lineage.model_version}, run {lineage.mlflow_run_id}, commit "
          f"{lineage.git_commit[:12]}"
          + (f"; {len(manifest.encryption.files)} model files encrypted (Tink key {manifest.encryption.key_id}), "
             "not decrypted" if manifest.encryption else "")
          + (f"; {len(fetched)} kept in the DVC remote, fetched and matching their .dvc records" if fetched else ""))
    gates = attested[GATES].statement["predicate"]
    print(f"attestations: SLSA provenance and {len(gates['gates'])} gate verdicts, signed by "
          f"{attested[PROVENANCE].key}")
    if args.policy:
        from pipelines.release.policy import check, load_policy

        held = check(load_policy(Path(args.policy)), attested[PROVENANCE].statement["predicate"], gates)
        print(f"policy {args.policy}: all {len(held)} rules hold")
    return 0


def cmd_propose(args: argparse.Namespace) -> int:
    remove_stale_scratch()  # what a killed propose, promote or rollback left in the temp folder
    from pipelines.release.gitops.propose import propose_release

    done = propose_release(settings(args), Path(args.release) if args.release else None, args.provider,
                           args.allow_dirty)
    state = "new commit" if done.changed else "unchanged"
    print(f"branch {done.branch}: {done.commit[:12]} ({state}), proposed onto {done.base}")
    print(f"report: {done.report_path} on the branch (git show {done.branch}:{done.report_path})")
    pull = done.pull_request
    if pull.url or pull.number:
        print(f"pull request #{pull.number}: {pull.url} ({'opened' if pull.created else 'updated'}), "
              f"report comment {pull.comment_id}")
    else:
        print(f"provider local: nothing pushed; review with `git diff {done.base}...{done.branch}`, "
              f"merge it to deploy")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    remove_stale_scratch()  # what a killed propose, promote or rollback left in the temp folder
    from pipelines.release.gitops.promote import promote

    done = promote(settings(args), dry_run=args.dry_run)
    if args.dry_run:
        print(f"OK {done.model} v{done.version}: deploy/production.yaml and its release verify (dry run)")
    else:
        print(f"promoted {done.model} v{done.version}: MLflow alias production "
              f"(was {('v' + done.previous) if done.previous else 'unset'})")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    remove_stale_scratch()  # what a killed propose, promote or rollback left in the temp folder
    from pipelines.release.gitops.promote import rollback

    done = rollback(settings(args), to=args.to, as_pull_request=args.pr)
    print(f"rolled back {done.model} v{done.from_version} -> v{done.to_version}: commit {done.commit[:12]} "
          f"on {done.branch}")
    if done.pull_request is not None:
        where = done.pull_request.url or f"branch {done.branch}"
        print(f"proposed as {where}; the alias moves when CI runs `mobile-mlops promote` after the merge")
    else:
        print("MLflow alias production moved; push the commit so the repository matches")
    return 0


def cmd_lineage_check(args: argparse.Namespace) -> int:
    from cli.checks import run_checks

    results = run_checks(settings(args), args.rev)
    problems = [p for _, found in results for p in found]
    for name, found in results:
        print(f"{'ok  ' if not found else 'FAIL'} {name}")
        for problem in found:
            print(f"       - {problem}")
    if problems:
        more = f" (and {len(problems) - 1} more above)" if len(problems) > 1 else ""
        raise PipelineError(f"lineage check failed: {problems[0]}{more}")
    return 0


def leaf(parent: argparse.ArgumentParser, name: str, handler: Callable[[argparse.Namespace], int],
          help_text: str, description: str) -> argparse.ArgumentParser:
    """A sub-sub-command (`release propose`, `lineage check`) with its own --debug."""
    sub = parent.add_subparsers(dest="action", required=True, metavar="ACTION").add_parser(
        name, help=help_text, description=description)
    sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    sub.set_defaults(handler=handler)
    return sub


def register(add: Add, with_params: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the GitOps commands to the `mobile-mlops` parser."""
    verify = add("verify", cmd_verify, "Check a release folder's signature and every file's hash (no key needed "
                                       "for an encrypted release).")
    verify.add_argument("path", help="release folder, e.g. releases/adult-income/1")
    verify.add_argument("--public-key", action="append", default=[], metavar="FILE",
                        help="trust only this PEM public key (repeatable); default: the project's keys/")
    verify.add_argument("--params", default=None, help="project params file whose keys/ to trust")
    verify.add_argument("--policy", metavar="FILE",
                        help="also check these rules on the attestations (docs/guides/supply-chain.md)")

    release = add("release", lambda a: 2, "Release pull requests (GitOps).")
    propose = leaf(release, "propose", cmd_propose,
                    "commit the latest (or given) release to release/<model>-<N> and open its PR",
                    "Commit a signed release, its report and deploy/production.yaml to release/<model>-<N> "
                    "without touching the working tree, then open or update its pull request.")
    propose.add_argument("release", nargs="?", help="release folder (default: the latest under releases/<model>/)")
    propose.add_argument("--provider", choices=["local", "github"], help="override params release.provider")
    propose.add_argument("--allow-dirty", action="store_true", help="accept a release built from uncommitted code")
    with_params(propose)

    promote = add("promote", cmd_promote,
                  "Verify the release deploy/production.yaml names; set MLflow alias production.")
    promote.add_argument("--dry-run", action="store_true", help="verify only; leave MLflow alone")
    with_params(promote)

    rollback = add("rollback", cmd_rollback,
                   "Restore the previous deploy/production.yaml (commit or PR), move the alias back.")
    rollback.add_argument("--to", metavar="VERSION", help="the version to restore (default: the recorded previous one)")
    rollback.add_argument("--pr", action="store_true", help="propose the rollback as a pull request instead")
    with_params(rollback)

    lineage = add("lineage", lambda a: 2, "Lineage checks CI runs.")
    check = leaf(lineage, "check", cmd_lineage_check,
                  "Definitions, asset metadata, asset graph vs dvc.yaml, committed releases",
                  "Fail, naming the mismatch, unless the Definitions load, every asset has a description, group, "
                  "owner and code version, the asset graph matches dvc.yaml, and every committed release verifies "
                  "with its data md5 matching dvc.lock at the commit it was built from.")
    check.add_argument("--rev", default="HEAD", help="the commit whose releases to check (default: HEAD)")
    with_params(check)
