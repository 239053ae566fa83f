"""Pure domain: entities, states, transitions, durations and decisions. No I/O."""
