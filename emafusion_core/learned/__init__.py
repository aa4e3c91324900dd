"""The learned router (paper item 4): embedding -> MLP trunk -> one linear head per model -> top-k under cost."""
from .model import ScoreNet
from .router import LearnedRouter
from .selection import as_mask, normalised_costs, select_top_k
from .train import TrainConfig, TrainReport, train_score_net

__all__ = ["LearnedRouter", "ScoreNet", "TrainConfig", "TrainReport", "as_mask", "normalised_costs", "select_top_k", "train_score_net"]
