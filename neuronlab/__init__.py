"""NeuronLab's command line (`neuronlab serve`, `train`, `config`, `doctor`) and where its files are.

Kept light: importing it loads neither torch nor the web app.
"""
__version__ = "0.1.0"
