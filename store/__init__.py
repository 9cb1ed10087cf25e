"""pingan.store"""
