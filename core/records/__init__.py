"""Clinical records: drafts, finalising, signing through signing-provider plugins, amendments, verification
and PDF export. Other plugins build on the records (e.g. a national EHR upload), so they live in the core."""
