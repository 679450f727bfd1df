"""The result table's arithmetic: plain numpy and the store's records, no torch, so the front end may import it.

`stats` holds the statistics (intervals, paired comparisons), `table` the rows and their renderers, `collect` turns
the store's finished runs into the table's inputs.
"""
