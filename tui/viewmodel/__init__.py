"""The TUI's view model: Textual-free, client-free logic the screens render.

Rows and cells of the tables (`table`, `columns`, `sweep_render`), filters, the change
coalescer, key-hint text, and the plans that confirm screens show. Nothing here imports
Textual or an API client (`tests/test_layers.py`), so it is tested without an app.
"""
