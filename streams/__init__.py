"""pingan.streams"""
