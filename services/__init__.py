"""Seller-Creator IM services: five FastStream apps over Kafka, one MongoDB database each."""
