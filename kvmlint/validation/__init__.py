"""Stage 7, validation: the proof of change sets, by the model and by the compiler."""
