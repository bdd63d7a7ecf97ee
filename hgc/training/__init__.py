"""Real coded gradient descent (``hgc train``): datasets, linear models and the coded trainer.

:func:`train` runs every scheme of a config on the same sampled delays and returns a
:class:`TrainResult` (``history`` → ``train.csv``, ``summary`` → ``train_summary.csv``).
"""

from hgc.training.datasets import Dataset, load_dataset
from hgc.training.models import LeastSquaresModel, LinearModel, SoftmaxModel, make_model
from hgc.training.trainer import (GRADIENT_GUARD, HISTORY_COLUMNS, SUMMARY_COLUMNS, PartitionedData,
                                  ResponseSchedule, SchemeRun, TrainResult, Trajectory, choose_partitions,
                                  coded_descent, response_schedule, time_to_target, train)

__all__ = [
    "GRADIENT_GUARD", "HISTORY_COLUMNS", "SUMMARY_COLUMNS",
    "Dataset", "LeastSquaresModel", "LinearModel", "PartitionedData", "ResponseSchedule", "SchemeRun",
    "SoftmaxModel", "TrainResult", "Trajectory",
    "choose_partitions", "coded_descent", "load_dataset", "make_model", "response_schedule",
    "time_to_target", "train",
]
