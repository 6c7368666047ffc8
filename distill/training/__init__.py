"""From a recipe to a saved student: recipes, the losses, the tasks (embedder, reader), the trainer, the student
folder and its model card, weight averaging, static students and the ONNX export."""
