"""The service layer the faces call: VenueOps and the account changes, rotation, bundles,
export, capture, paste formats, views and the clipboard.  Uses vault.venues, vault.net
and vault.core; never a face (cli, agent, api, monitor, tui)."""
