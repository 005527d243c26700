"""The `mmclassify` command line: parses options, calls the library, prints. Installed as `mmclassify_cli`."""
