"""Batch systems (Slurm, LSF, PBS/Torque, HTCondor): submitting, watching and cancelling jobs."""
