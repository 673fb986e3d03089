"""What runs the estimators: the device-resident loop, checkpoints, distribution over ranks,
progress, atomic writes and the checks of user input."""
