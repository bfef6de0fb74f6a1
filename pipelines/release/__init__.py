"""Release domain: the signed release folder, signing, and GitOps (branches, pull requests, promote, rollback)."""
