"""NeuronLab web layer: parse requests, call the engine, serialize. Thin on purpose."""
