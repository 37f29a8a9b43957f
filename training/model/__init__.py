"""The networks (encoder, generator, critic), their building blocks and losses."""
