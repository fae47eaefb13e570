"""Noise schedules on continuous time t in [0, 1] (see :class:`thermogen.NoiseSchedule`)."""
