"""The ground layer: the file format, storage, the vault service, the model, errors, the
audit chain, PEM handling and terminal questions.  Imports nothing else of keyward."""
