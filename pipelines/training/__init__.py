"""Training domain: the Keras model with its fairness mitigation, evaluation metrics, MLflow tracking."""
