"""The real-model kit: cell plans and their resumable store, AR decoding of a cell, the length test."""
