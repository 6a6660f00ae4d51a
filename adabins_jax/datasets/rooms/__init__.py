"""The synthetic-rooms renderer behind the ``synthetic_rooms`` dataset.

  geometry  boxes, cylinders and planes, and where rays hit them
  scene     a random room, its furniture, materials, lights and camera
  render    ray casting a scene into an image and its exact depth
"""
