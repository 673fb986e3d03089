"""The estimators: AIS with HMC transitions along an annealing path, curves, BDMC, and their parts
(distortions, priors, schedules, keyed random numbers, step sizes, results, the closed form)."""
