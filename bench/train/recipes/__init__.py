"""The recipes, one module each: its params' DEFAULTS, `prepare(job)` (its data, from the entry's data files) and
`train(base, *arguments, out, params, seed)` on the ecosystem's own trainer, returning what training.json records.
Each is one row of bench.models.recipe_table (trim-vocab lives in bench.train.trim).

Every recipe writes a loadable model folder into `out` (a temporary folder the build renames into place).
"""
