"""Neutral cards and forms; each adapter draws them natively."""
