"""The release format, shared by data (the drift reference) and release (building one): Tink keysets, the
deployed state (deploy/production.yaml), running a release's TFLite model, and loading a published release's model.

It sits between core and the domain packages: it imports only core, and every domain may import it."""
