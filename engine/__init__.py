"""NeuronLab engine: pure torch/numpy (plus Pillow for decoding images and SQLite for what is
kept); nothing here imports the web layer, and results are arrays (app/serialize.py makes JSON).

- the lessons' mathematics: neuron, descent, splitdata, convolution, activations, saliency
- networks and data: models (layer lists, presets), datasets, idx, preprocess, imageio, inference,
  export
- training/: the Trainer, augmentation, a job in its own process, the job queue, fine-tuning
  (`python -m engine.train` trains and saves a model)
- stores/: models (safetensors + cards, the registry), projects, class sessions, the SQLite helper,
  whole-or-nothing writes
"""
