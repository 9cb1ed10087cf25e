"""pingan.cli"""
