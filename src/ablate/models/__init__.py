"""Model families. Each receives the input shape, the class count and its parts (activation
factory, :class:`~ablate.nn.Norm`), never names, and knows nothing of Hydra or Lightning."""

from ablate.models.cnn import CNN
from ablate.models.mlp import MLP
from ablate.models.resnet import ResNet
from ablate.models.rnn import RNN
from ablate.models.transformer import Transformer
from ablate.models.vgg import VGG

__all__ = ["MLP", "CNN", "VGG", "ResNet", "RNN", "Transformer"]
