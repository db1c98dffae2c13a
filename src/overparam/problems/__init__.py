"""What is learned: a data model, a forward map and a loss, one module per family."""

from .linear_regression import LinearRegressionProblem, powerlaw_problem, powerlaw_spectrum
from .matrix_sensing import low_rank_truth, make_operator, measure
from .quadratic_net import (QuadraticNet, QuadraticNetProblem, make_problem, powerlaw_teacher,
                            powerlaw_teacher_spectrum, psd_rank)
from .shallow_net import random_problem, shallow_net
from .softmax_regression import SoftmaxRegression, curvature_report, make_data_dominated, make_instance

__all__ = ["LinearRegressionProblem", "powerlaw_problem", "powerlaw_spectrum", "make_operator", "low_rank_truth",
           "measure", "QuadraticNet", "QuadraticNetProblem", "make_problem", "psd_rank",
           "powerlaw_teacher", "powerlaw_teacher_spectrum", "shallow_net",
           "random_problem", "SoftmaxRegression", "make_instance", "make_data_dominated", "curvature_report"]
