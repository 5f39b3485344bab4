"""The ground layer: the file format, storage, the vault service, the model, errors, the
audit chain and PEM handling.  Imports nothing else of keyward."""
