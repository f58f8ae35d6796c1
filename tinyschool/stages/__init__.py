"""The stages of the main job, one module each: a driver (decides from the store what is done, maps
task functions over the rest with an executor) and the function the main job calls,
`(recipe, corpus, args) -> stats`, which prints the stage's summary. `main_job.MAIN_JOB` lists them
in order. See ARCHITECTURE.md ("Adding a stage").

This package module imports none of them, so that a command loads only the stage it runs.
"""
