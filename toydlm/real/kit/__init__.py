"""The real-model kit, what every analysis of the wing shares: cell plans and their resumable store
(`store`, `generate`, `runner`), opening a checkpoint (`checkpoint`), the shared prompt sets and attacks
(`prompts`), the LLM harm judge on stored cells (`judged`), figure saving (`figures`) and the length test."""
