"""Training algorithms: SGD, learning rules and learning-rate schedules."""
