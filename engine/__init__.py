"""NeuronLab engine: datasets, models, preprocessing, training and inference.

Pure torch/numpy (plus Pillow for decoding images). Nothing here imports the web layer.
"""
