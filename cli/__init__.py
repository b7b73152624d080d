"""The `gaelp` console script: subcommands that run what orchestration/ wires, holding no wiring and no business
math (`gaelp accounts discover`, `gaelp accounts check`)."""
