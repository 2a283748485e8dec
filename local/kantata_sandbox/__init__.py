"""A local, in-memory Kantata OX over real HTTP, with fault injection: a dev and test tool, not shipped."""
