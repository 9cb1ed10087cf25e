"""pingan.handlers"""
